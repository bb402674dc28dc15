-- Tills (DESIGN.md §18): a terminal login names the till it works at, so its cash calls and
-- sales use that till's drawer. NULL (a session opened before tills) is the store's first till.
ALTER TABLE terminal_sessions ADD COLUMN till TEXT;
