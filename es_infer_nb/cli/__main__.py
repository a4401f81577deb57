"""``python -m es_infer_nb.cli``: the ``es-infer`` command."""

from . import main

raise SystemExit(main())
