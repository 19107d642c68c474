-- backfill display names from the name, else the email
-- depends: 0003_index_notes_user
UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL;
