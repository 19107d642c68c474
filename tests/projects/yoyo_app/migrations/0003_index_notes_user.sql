-- index notes by user
-- depends: 0002_add_columns
CREATE INDEX ix_notes_user_id ON notes (user_id);
