-- note timestamps and user display names
-- depends: 0001_initial
ALTER TABLE notes ADD COLUMN created_at TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
