"""The `.goluca` journal against the database: atomic streaming import (`importer`),
streaming export (`exporter`). The format itself is `ledger.journal`."""

from worthline.ledger.journal_io.exporter import export_journal
from worthline.ledger.journal_io.importer import ImportResult, JournalInvalid, import_journal

__all__ = ["ImportResult", "JournalInvalid", "export_journal", "import_journal"]
