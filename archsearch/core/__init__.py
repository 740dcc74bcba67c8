"""The plumbing every layer stands on, importing nothing above it: the error root with its fields
(``errors``), registries of names (``registry``, ``names``), atomic JSON files (``jsonio``), run
folders (``runfolder``), worker processes (``supervisor``), budgets as text (``budgets``), memory
checks (``resources``), the machine a result came from (``machine``) and plain tables (``tables``)."""
