"""The migrated SQLite test database, kept between runs: applying the migrations costs each pytest
process about 4.5 s of CPU (Django renders the models' state after each of ~70 migrations),
while copying the migrated database into the in-memory one takes milliseconds.

The copy is a file in the system's temporary folder, named after a hash of every migration file
of every installed app and of the Django and SQLite versions: a new or edited migration makes a
new copy. The project's modules that a migration imports (the counters' and the CRM account
copy's trigger SQL) are in the hash too: a trigger changed there makes a new copy as well. After
loading it, post_migrate is sent as `migrate` sends it, so what the apps do then (the counter
triggers restored from today's code, content types, permissions) is as fresh as after a real
`migrate`. TEST_DB_SNAPSHOTS=false migrates every time. PostgreSQL (CI) is migrated as usual."""

import ast
import hashlib
import os
import sqlite3
import tempfile
from contextlib import contextmanager
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
ENABLED = os.environ.get("TEST_DB_SNAPSHOTS", "true").lower() not in ("0", "false", "no")


def _key():
    import django
    from django.apps import apps

    digest = hashlib.sha256(f"{django.__version__} {sqlite3.sqlite_version}".encode())
    for config in sorted(apps.get_app_configs(), key=lambda c: c.label):
        name = f"{config.name}.migrations"
        if find_spec(name) is None:
            continue
        folder = Path(import_module(name).__file__).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{config.label}/{path.name}".encode())
            source = path.read_bytes()
            digest.update(source)
            for module in sorted(_project_imports(source)):
                digest.update(module.encode())
                digest.update(Path(find_spec(module).origin).read_bytes())
    return digest.hexdigest()[:20]


def _project_imports(source):
    """The modules of this project (not Django's, not the standard library's) that a migration
    imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            spec = _spec_or_none(name)
            origin = Path(spec.origin) if spec and spec.origin else None
            # The project's own files: not an installed package (the venv may sit inside it).
            if origin and origin.is_relative_to(PROJECT) and "site-packages" not in origin.parts:
                found.add(spec.name)
    return found


def _spec_or_none(name):
    try:
        return find_spec(name)
    except (ImportError, ValueError):  # "contacts.models.CONTACT_COUNTER": a name, not a module
        return None


def _snapshot_path():
    return Path(tempfile.gettempdir()) / f"portal-admin-test-db-{_key()}.sqlite3"


@contextmanager
def migrations_from_a_snapshot():
    """While the test database is set up: `migrate` on SQLite loads the snapshot when there is
    one, and writes it when there is none."""
    from django.core.management.commands import migrate
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import connections

    real_handle = migrate.Command.handle

    def handle(command, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "sqlite" or not ENABLED:
            return real_handle(command, *args, **options)
        snapshot = _snapshot_path()
        connection.ensure_connection()
        if snapshot.exists():
            source = sqlite3.connect(snapshot)
            try:
                source.backup(connection.connection)
            finally:
                source.close()
            emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)
            return None
        result = real_handle(command, *args, **options)
        partial = snapshot.with_suffix(f".{os.getpid()}.partial")
        target = sqlite3.connect(partial)
        try:
            connection.connection.backup(target)
        finally:
            target.close()
        os.replace(partial, snapshot)  # whole or not at all, for a process reading it now
        return result

    migrate.Command.handle = handle
    try:
        yield
    finally:
        migrate.Command.handle = real_handle
