-- display names are required: fill the gaps, then rebuild users (SQLite's 12-step procedure;
-- yoyo runs the file in one transaction, foreign key enforcement is off)
-- depends: 0005_tags
UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL;
CREATE TABLE users_new (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT,
    display_name TEXT NOT NULL
);
INSERT INTO users_new (id, email, name, display_name)
    SELECT id, email, name, display_name FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
