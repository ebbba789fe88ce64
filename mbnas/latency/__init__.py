"""Latency for the device a network is deployed on (issue 21): a table of whole blocks
measured there (:mod:`.table`, :mod:`.measure`, :mod:`.build`), and the cost metric that
prices a spec from it (:func:`.metric.latency_metric`)."""
