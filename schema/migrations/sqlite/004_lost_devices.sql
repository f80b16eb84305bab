-- Lost devices: a device whose update is under way while it has been offline longer than the
-- gate's lost_after. Its row keeps when it was last read online after the dispatch (what the
-- time offline counts from, also after a resume) and since when it is lost; an observation
-- counts the lost devices apart from the statuses of their updates.
ALTER TABLE device_states ADD COLUMN online_last INTEGER;  -- last read online; NULL: not since the dispatch
ALTER TABLE device_states ADD COLUMN lost_at INTEGER;      -- lost since; NULL: not lost
ALTER TABLE observations ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;
