"""Ingestion: hospital (or synthetic) images, masks and clinical tables → standard files.

See docs/data_contracts.md "ingest → everything after" for what
:func:`mtnet.io.center.ingest_center` writes. The heavy modules (SimpleITK, pydicom) load on
first use, so ``mtnet --help`` stays fast.
"""


def ingest_center(*args, **kwargs):
    from mtnet.io.center import ingest_center as run

    return run(*args, **kwargs)


__all__ = ["ingest_center"]
