-- tags on notes
-- depends: 0004_backfill_display_name
CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE note_tags (
    note_id INTEGER NOT NULL REFERENCES notes (id),
    tag_id INTEGER NOT NULL REFERENCES tags (id),
    PRIMARY KEY (note_id, tag_id)
);
