"""Order-entry gateways: :mod:`mlthon.gateways.base` (the seam every gateway implements),
:mod:`mlthon.gateways.sim` (the simulated exchange) and, later, one folder per venue (start from
``_template/``)."""
