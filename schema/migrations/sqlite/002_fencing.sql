-- Fencing. Every acquisition of a run's lease takes the next generation; a process's writes
-- check, in their own transaction, that the lease still has the generation it acquired.
-- A released lease stays as a row (released_at set), so a generation is never reused.
ALTER TABLE leases ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN released_at INTEGER;

-- What a run's stages select, one "project/group" (or "project/*") a line: a new run is
-- refused while a live run of the same plan or of a shared target holds its lease.
ALTER TABLE runs ADD COLUMN targets TEXT NOT NULL DEFAULT '';
