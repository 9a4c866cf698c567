-- toolgated's schema on PostgreSQL, version 4: the audit hash chain.
-- Each event's hash is part of its body (`body ->> 'hash'`, see
-- gateway/src/store/chain.rs); store_state keeps the newest event's hash
-- so that the next append, holding store_state's row lock, chains after it
-- even when retention has pruned every event. Empty: no chained event yet
-- (the next one chains from 32 zero bytes; events stored before this
-- version carry no hash and `toolgated audit verify` reports them as
-- predating the chain).
ALTER TABLE store_state ADD COLUMN audit_hash TEXT NOT NULL DEFAULT '';
