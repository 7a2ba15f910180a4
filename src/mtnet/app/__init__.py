"""The applet: one new patient's MVI risk from a trained model folder (paper Fig. 5).

``mtnet predict`` (command line, one patient or ``--batch``) and ``mtnet serve`` (a
server-rendered web form) run a new patient through the workflow's own stage functions
with the settings the model folder recorded (:mod:`mtnet.model.identity`), never a
re-implementation: the patient is written as a one-patient ``source: files`` delivery in a
temporary folder, then ingested (:func:`mtnet.io.center.ingest_center`), its liver
segmented (:func:`mtnet.liver.segment_center`, the recorded backend), its tumor handled and
cropped (:func:`mtnet.tumor.process_center`), its radiomics extracted where the model
needs them (:func:`mtnet.features.extract_center`), and scored by the registry's
``predict`` entry point as an ``external`` center. docs/applet.md describes the use.

- :mod:`mtnet.app.served`: a model folder checked and loaded (identity, Youden threshold,
  the factors a patient needs);
- :mod:`mtnet.app.inputs`: factors, uploads and zips checked at the door;
- :mod:`mtnet.app.pipeline`: the delivery, the stages, the result and its picture;
- :mod:`mtnet.app.cli`: ``mtnet predict`` and ``mtnet serve``;
- :mod:`mtnet.app.web`: the FastAPI application;
- :mod:`mtnet.app.run`: ``mtnet run``, the workflow under a supervisor (the command of
  ``make demo``).
"""
