"""The world as a data source: every kind of examples the objective kinds consume, generated
(``data.kind=world``). Registered through the ``polymodal.sources`` entry point, so the library finds
them without importing the world; importing this package registers them all."""

from ...plugins import import_all

import_all(__name__)
