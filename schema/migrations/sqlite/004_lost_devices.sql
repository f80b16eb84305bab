-- Lost devices: a device whose update is under way while it has been offline longer than the
-- gate's lost_after. Its row keeps when it was last read online after the dispatch (what the
-- time offline counts from, also after a resume), since when it is lost, and whether its
-- update was seen in progress; an observation
-- counts the lost devices apart from the statuses of their updates.
ALTER TABLE device_states ADD COLUMN online_last INTEGER;  -- last read online; NULL: not since the dispatch
ALTER TABLE device_states ADD COLUMN lost_at INTEGER;      -- lost since; NULL: not lost
-- Its update was seen in progress: pending again after that is still under way.
ALTER TABLE device_states ADD COLUMN started INTEGER NOT NULL DEFAULT 0;
ALTER TABLE observations ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;
