"""The app's schema history, as sqlite-utils migrations (``sqlite-utils migrate app.db
app/migrations.py`` applies them)."""

from sqlite_utils import Database, Migrations

MIGRATIONS = Migrations("notes_app")


@MIGRATIONS()
def initial(db: Database) -> None:
    db.table("users").create({"id": int, "email": str, "name": str}, pk="id", not_null={"email"})
    db.table("users").create_index(["email"], unique=True)
    db.table("notes").create(
        {"id": int, "user_id": int, "body": str},
        pk="id",
        not_null={"user_id", "body"},
        foreign_keys=[("user_id", "users", "id")],
    )


@MIGRATIONS()
def add_columns(db: Database) -> None:
    db.table("notes").add_column("created_at", str)
    db.table("users").add_column("display_name", str)


@MIGRATIONS()
def index_notes_user(db: Database) -> None:
    db.table("notes").create_index(["user_id"], index_name="ix_notes_user_id")


@MIGRATIONS()
def backfill_display_name(db: Database) -> None:
    db.execute("UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL")


@MIGRATIONS()
def tags(db: Database) -> None:
    db.table("tags").create({"id": int, "name": str}, pk="id", not_null={"name"})
    db.table("tags").create_index(["name"], unique=True)
    db.table("note_tags").create(
        {"note_id": int, "tag_id": int},
        pk=("note_id", "tag_id"),
        foreign_keys=[("note_id", "notes", "id"), ("tag_id", "tags", "id")],
    )


@MIGRATIONS()
def display_name_not_null(db: Database) -> None:
    db.execute("UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL")
    # SQLite cannot ALTER a column to NOT NULL: transform() rebuilds users.
    db.table("users").transform(not_null={"display_name"})
