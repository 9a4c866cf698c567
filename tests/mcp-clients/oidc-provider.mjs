// A real OpenID Connect provider (the npm package oidc-provider) on loopback,
// for tests that sign users in through "the company's identity provider"
// (gateway/tests/oidc_signin.rs, tests/python). Its sign-in pages can be
// completed by an HTTP client without a browser (a cookie jar is needed:
// the provider keeps its interaction state in cookies).
//
// Start: node oidc-provider.mjs '<config JSON>'
//    or: OIDC_PROVIDER_CONFIG='<config JSON>' node oidc-provider.mjs
//    or: node oidc-provider.mjs --config <file.json>
// Config:
//   {
//     "clients": [{"client_id": "toolgate", "client_secret": "s3cret",
//                  "redirect_uris": ["http://127.0.0.1:PORT/signin/oidc/callback"]}],
//       (client_secret omitted: a public client, token_endpoint_auth_method none)
//     "accounts": [{"sub": "ana", "email": "ana@acme.example",
//                   "email_verified": true, "groups": ["sales"], "name": "Ana"}],
//     "id_token_claims": true   (optional, default true: email, groups and
//        name in the ID token too; false: only in userinfo, OIDC Core 5.4)
//     "port": 0   (optional: a fixed loopback port, e.g. to start a provider
//        again at the same issuer with new signing keys)
//   }
// Each start makes a new RSA signing key (kid "test-rs256").
// When listening it prints ONE line on stdout:
//   {"issuer": "http://127.0.0.1:PORT"}
// and it exits when its stdin closes (so it dies with the test that started it).
//
// Scripted logins (all on the issuer's origin):
// - The authorization endpoint redirects to GET /interaction/<uid>, an HTML
//   form. POST /interaction/<uid>/login with form `login=<account sub>` signs
//   that account in; POST /interaction/<uid>/abort answers the client with
//   error=access_denied. Either answers 303 to the provider, which redirects
//   to the client's redirect_uri.
// - Or queue the outcome of the next interactions: POST /test/next-login
//   with JSON {"login": "<sub>"} or {"deny": true}; the next GET
//   /interaction/<uid> then completes without a form (a client that only
//   follows redirects signs in). Queued outcomes are used in order.
// Consent at the provider is implicit (loadExistingGrant grants the
// requested scopes and claims to the configured clients): it is not what
// the tests are about.
// Scopes: openid, email (email, email_verified), profile (name), groups
// (groups), offline_access. PKCE S256 is required.

import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

function loadConfig() {
  const args = process.argv.slice(2);
  const at = args.indexOf("--config");
  if (at >= 0) return JSON.parse(fs.readFileSync(args[at + 1], "utf8"));
  if (args[0]) return JSON.parse(args[0]);
  if (process.env.OIDC_PROVIDER_CONFIG) return JSON.parse(process.env.OIDC_PROVIDER_CONFIG);
  throw new Error("oidc-provider.mjs: no config (argv JSON, --config FILE or OIDC_PROVIDER_CONFIG)");
}

// stdout carries the one JSON line only: oidc-provider's notices go to stderr.
console.log = console.info = console.warn = (...args) => console.error(...args);

const config = loadConfig();
const accounts = new Map((config.accounts ?? []).map((a) => [a.sub, a]));
const idTokenClaims = config.id_token_claims ?? true;
const queued = [];

const escape = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const server = http.createServer();
server.listen(config.port ?? 0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients ?? []).map((c) => ({
      client_id: c.client_id,
      ...(c.client_secret
        ? { client_secret: c.client_secret, token_endpoint_auth_method: c.token_endpoint_auth_method ?? "client_secret_basic" }
        : { token_endpoint_auth_method: "none" }),
      redirect_uris: c.redirect_uris,
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    })),
    async findAccount(ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          const claims = { sub };
          for (const name of ["email", "email_verified", "groups", "name"]) {
            if (account[name] !== undefined) claims[name] = account[name];
          }
          return claims;
        },
      };
    },
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name"],
      groups: ["groups"],
    },
    scopes: ["openid", "email", "profile", "groups", "offline_access"],
    conformIdTokenClaims: !idTokenClaims,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: [crypto.randomBytes(32).toString("hex")] },
    jwks: {
      keys: [
        {
          ...crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }),
          kid: "test-rs256",
          alg: "RS256",
          use: "sig",
        },
      ],
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 3600,
      Session: 3600,
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid email profile groups offline_access");
      grant.addOIDCClaims(["email", "email_verified", "name", "groups"]);
      await grant.save();
      return grant;
    },
  });
  const callback = provider.callback();

  async function finish(req, res, outcome) {
    const result = outcome.deny
      ? { error: "access_denied", error_description: "The user refused to sign in" }
      : { login: { accountId: outcome.login } };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  function page(res, status, html) {
    res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(`<!doctype html><html><body>${html}</body></html>`);
  }

  server.on("request", async (req, res) => {
    try {
      const url = new URL(req.url, issuer);
      if (req.method === "POST" && url.pathname === "/test/next-login") {
        const outcome = JSON.parse((await readBody(req)) || "{}");
        if (!outcome.deny && !accounts.has(outcome.login)) {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: `no account ${outcome.login}` }));
          return;
        }
        queued.push(outcome.deny ? { deny: true } : { login: outcome.login });
        res.writeHead(204);
        res.end();
        return;
      }
      const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login|\/abort)?$/);
      if (m) {
        const details = await provider.interactionDetails(req, res);
        if (details.uid !== m[1]) throw new Error("interaction mismatch");
        if (req.method === "GET" && !m[2]) {
          if (queued.length > 0) {
            await finish(req, res, queued.shift());
            return;
          }
          const options = [...accounts.keys()].map((s) => `<option>${escape(s)}</option>`).join("");
          page(
            res,
            200,
            `<h1>Sign in (${escape(details.prompt.name)})</h1>` +
              `<form method="post" action="/interaction/${escape(details.uid)}/login">` +
              `<select name="login">${options}</select><button>Sign in</button></form>` +
              `<form method="post" action="/interaction/${escape(details.uid)}/abort"><button>Cancel</button></form>`,
          );
          return;
        }
        if (req.method === "POST" && m[2] === "/login") {
          const login = new URLSearchParams(await readBody(req)).get("login");
          if (!accounts.has(login)) {
            page(res, 400, `<p>no account ${escape(login)}</p>`);
            return;
          }
          await finish(req, res, { login });
          return;
        }
        if (req.method === "POST" && m[2] === "/abort") {
          await finish(req, res, { deny: true });
          return;
        }
        res.writeHead(405);
        res.end();
        return;
      }
      callback(req, res);
    } catch (e) {
      if (!res.headersSent) page(res, 500, `<p>oidc-provider.mjs: ${escape(e.message)}</p>`);
      else res.end();
    }
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
