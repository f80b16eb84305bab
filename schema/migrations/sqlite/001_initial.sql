-- rollout state database, schema version 1.
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
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  finished_at INTEGER
);

CREATE TABLE stages (
  run_id        TEXT NOT NULL REFERENCES runs(id),
  name          TEXT NOT NULL,
  position      INTEGER NOT NULL,
  status        TEXT NOT NULL,          -- waiting, awaiting_approval, dispatching, gating, passed, failed, paused, stopped, rolled_back
  reason        TEXT NOT NULL DEFAULT '',
  started_at    INTEGER,
  dispatched_at INTEGER,
  finished_at   INTEGER,
  PRIMARY KEY (run_id, name)
);

-- The devices a stage targeted, listed once before its dispatch.
CREATE TABLE snapshots (
  run_id    TEXT NOT NULL,
  stage     TEXT NOT NULL,
  taken     INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (run_id, stage)
);
CREATE TABLE snapshot_devices (
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  device_uuid TEXT NOT NULL,
  device_id   INTEGER NOT NULL,
  device_name TEXT NOT NULL,
  grp         TEXT NOT NULL,
  PRIMARY KEY (run_id, stage, device_uuid)
);

-- Every deploy_update: the intent is committed before it is sent, the outcome after.
CREATE TABLE api_calls (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  kind        TEXT NOT NULL,            -- dispatch, rollback
  marker      TEXT NOT NULL,            -- in metadata.comment; finds this call's updates on devices
  body        TEXT NOT NULL,            -- the exact body sent, user_token redacted
  devices     INTEGER NOT NULL,
  intent_at   INTEGER NOT NULL,
  outcome     TEXT,                     -- NULL until known: accepted, refused, failed, unknown, settled_applied, settled_not_applied
  http_status INTEGER NOT NULL DEFAULT 0,
  message     TEXT NOT NULL DEFAULT '',
  outcome_at  INTEGER
);
CREATE INDEX api_calls_by_run ON api_calls(run_id, id);
CREATE INDEX api_calls_by_stage ON api_calls(run_id, stage, kind, id);

-- Each gate poll: the counts behind every decision.
CREATE TABLE observations (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  at          INTEGER NOT NULL,
  elapsed_ms  INTEGER NOT NULL,
  targeted    INTEGER NOT NULL,
  pending     INTEGER NOT NULL,
  in_progress INTEGER NOT NULL,
  success     INTEGER NOT NULL,
  failed      INTEGER NOT NULL,
  aborted     INTEGER NOT NULL,
  missing     INTEGER NOT NULL,
  verdict     TEXT NOT NULL,
  reason      TEXT NOT NULL
);
CREATE INDEX observations_by_run ON observations(run_id, id);

CREATE TABLE approvals (
  run_id  TEXT NOT NULL,
  stage   TEXT NOT NULL,
  by_user TEXT NOT NULL,
  at      INTEGER NOT NULL,
  comment TEXT NOT NULL DEFAULT ''
);

CREATE TABLE events (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id  TEXT NOT NULL,
  at      INTEGER NOT NULL,
  stage   TEXT NOT NULL DEFAULT '',
  kind    TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX events_by_run ON events(run_id, id);

CREATE TABLE abort_requests (
  run_id   TEXT PRIMARY KEY,
  rollback INTEGER NOT NULL,
  by_user  TEXT NOT NULL,
  at       INTEGER NOT NULL
);

-- One writer per run.
CREATE TABLE leases (
  run_id       TEXT PRIMARY KEY,
  owner_host   TEXT NOT NULL,
  owner_pid    INTEGER NOT NULL,
  owner_user   TEXT NOT NULL,
  acquired_at  INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
