"""Running the workflow: ``mtnet run`` (:mod:`mtnet.app.run`), the supervisor of ``make demo``."""
