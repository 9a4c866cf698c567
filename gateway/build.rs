//! Rebuilds when a schema migration is added or changed: `sqlx::migrate!`
//! embeds `migrations/` at compile time (sqlx docs, "migrate!").

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
