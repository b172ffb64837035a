"""What people run: the lme-enrich command, doctor, preflight, credentials, Kibana objects."""
