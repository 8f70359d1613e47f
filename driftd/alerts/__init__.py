"""driftd's Prometheus rules as code: recording rules (leader, SLO windows, objectives) and
alerts (multiwindow multi-burn-rate SLO alerts per model, operational alerts), built from the
``Settings`` that the daemon runs with. Pure: ``rules_document(settings)`` returns plain data;
``driftd rules`` writes it as YAML."""
