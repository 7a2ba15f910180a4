"""Ingestion: hospital (or synthetic) images, masks and clinical tables → standard files.

See docs/data_contracts.md "ingest → everything after" for what :func:`ingest_center` writes.
"""

from mtnet.io.center import ingest_center

__all__ = ["ingest_center"]
