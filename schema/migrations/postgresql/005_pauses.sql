-- A person's pause of a run (rollout pause): while it holds, no new stage or ramp step
-- starts; gates already under way go on observing and deciding. `rollout resume` lifts it
-- (lifted_by, lifted_at). The latest pause of each run; every pause and lift is also an event.
CREATE TABLE pauses (
  run_id    TEXT PRIMARY KEY,
  by_user   TEXT NOT NULL,
  at        BIGINT NOT NULL,
  comment   TEXT NOT NULL DEFAULT '',
  lifted_by TEXT,
  lifted_at BIGINT
);
