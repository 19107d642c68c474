from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# tests/projects/ holds example user projects whose pyproject.toml names a migrator: the
# adapters' tests certify them (and copy them for pytester); this suite must not collect them.
collect_ignore = ["projects"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Slow matrices run only when asked for (-m slow); CI runs their bounded slices.
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
