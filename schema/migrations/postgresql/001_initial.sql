-- rollout state database on PostgreSQL, schema version 1 (as SQLite's).
-- Times are milliseconds since the Unix epoch (UTC). No user token is ever stored.

CREATE TABLE runs (
  id          TEXT PRIMARY KEY,
  plan_name   TEXT NOT NULL,
  plan_path   TEXT NOT NULL,
  plan_text   TEXT NOT NULL,            -- the plan as it was applied; resume reads this
  plan_hash   TEXT NOT NULL,            -- sha256 of plan_text
  created_by  TEXT NOT NULL,
  host        TEXT NOT NULL,
  api_url     TEXT NOT NULL,
  status      TEXT NOT NULL,            -- running, paused, completed, stopped, aborted, failed, interrupted
  reason      TEXT NOT NULL DEFAULT '',
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  finished_at BIGINT
);

CREATE TABLE stages (
  run_id        TEXT NOT NULL REFERENCES runs(id),
  name          TEXT NOT NULL,
  position      BIGINT NOT NULL,
  status        TEXT NOT NULL,          -- waiting, awaiting_approval, dispatching, gating, passed, failed, paused, stopped, rolled_back
  reason        TEXT NOT NULL DEFAULT '',
  started_at    BIGINT,
  dispatched_at BIGINT,
  finished_at   BIGINT,
  PRIMARY KEY (run_id, name)
);

-- The devices a stage targeted, listed once before its dispatch.
CREATE TABLE snapshots (
  run_id    TEXT NOT NULL,
  stage     TEXT NOT NULL,
  taken     BIGINT NOT NULL DEFAULT 1,
  PRIMARY KEY (run_id, stage)
);
CREATE TABLE snapshot_devices (
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  device_uuid TEXT NOT NULL,
  device_id   BIGINT NOT NULL,
  device_name TEXT NOT NULL,
  grp         TEXT NOT NULL,
  PRIMARY KEY (run_id, stage, device_uuid)
);

-- Every deploy_update: the intent is committed before it is sent, the outcome after.
CREATE TABLE api_calls (
  id          BIGSERIAL PRIMARY KEY,
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  kind        TEXT NOT NULL,            -- dispatch, rollback
  marker      TEXT NOT NULL,            -- in metadata.comment; finds this call's updates on devices
  body        TEXT NOT NULL,            -- the exact body sent, user_token redacted
  devices     BIGINT NOT NULL,
  intent_at   BIGINT NOT NULL,
  outcome     TEXT,                     -- NULL until known: accepted, refused, failed, unknown, settled_applied, settled_not_applied
  http_status BIGINT NOT NULL DEFAULT 0,
  message     TEXT NOT NULL DEFAULT '',
  outcome_at  BIGINT
);
CREATE INDEX api_calls_by_run ON api_calls(run_id, id);
CREATE INDEX api_calls_by_stage ON api_calls(run_id, stage, kind, id);

-- Each gate poll: the counts behind every decision.
CREATE TABLE observations (
  id          BIGSERIAL PRIMARY KEY,
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  at          BIGINT NOT NULL,
  elapsed_ms  BIGINT NOT NULL,
  targeted    BIGINT NOT NULL,
  pending     BIGINT NOT NULL,
  in_progress BIGINT NOT NULL,
  success     BIGINT NOT NULL,
  failed      BIGINT NOT NULL,
  aborted     BIGINT NOT NULL,
  missing     BIGINT NOT NULL,
  verdict     TEXT NOT NULL,
  reason      TEXT NOT NULL
);
CREATE INDEX observations_by_run ON observations(run_id, id);

CREATE TABLE approvals (
  id      BIGSERIAL PRIMARY KEY,  -- the order they were given in (SQLite: rowid)
  run_id  TEXT NOT NULL,
  stage   TEXT NOT NULL,
  by_user TEXT NOT NULL,
  at      BIGINT NOT NULL,
  comment TEXT NOT NULL DEFAULT ''
);

CREATE TABLE events (
  id      BIGSERIAL PRIMARY KEY,
  run_id  TEXT NOT NULL,
  at      BIGINT NOT NULL,
  stage   TEXT NOT NULL DEFAULT '',
  kind    TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX events_by_run ON events(run_id, id);

CREATE TABLE abort_requests (
  run_id   TEXT PRIMARY KEY,
  rollback BIGINT NOT NULL,
  by_user  TEXT NOT NULL,
  at       BIGINT NOT NULL
);

-- One writer per run.
CREATE TABLE leases (
  run_id       TEXT PRIMARY KEY,
  owner_host   TEXT NOT NULL,
  owner_pid    BIGINT NOT NULL,
  owner_user   TEXT NOT NULL,
  acquired_at  BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL
);
