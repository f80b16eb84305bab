-- Which devices: each targeted device's state at its stage's gate, so that a run can say,
-- years later, which devices failed, on which update, since when. A row is written when the
-- device's state changes (and its online state at each gate decision), in the transaction
-- of the observation that saw it. The device's name and group are in snapshot_devices.
CREATE TABLE device_states (
  run_id      TEXT NOT NULL,
  stage       TEXT NOT NULL,
  device_uuid TEXT NOT NULL,
  update_id   INTEGER NOT NULL DEFAULT 0,  -- Upswift's update_id of this run's update; 0: none
  status      TEXT NOT NULL,   -- pending, in_progress, success, failed, aborted, other,
                               -- missing (the update is not on it), unlisted (left the groups)
  since       INTEGER NOT NULL,           -- first seen in this status
  online      TEXT NOT NULL DEFAULT '',   -- online, offline; '' until read at a gate decision
  online_at   INTEGER,                    -- when it was read
  PRIMARY KEY (run_id, stage, device_uuid)
) WITHOUT ROWID;  -- the key is the row: stored once, not in a table and again in an index
