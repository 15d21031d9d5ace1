"""The local stack of the embedded default (``make run``): the Elasticsearch node manager, local
Airflow (LocalExecutor or Celery), background services, the mail sink, the replay server with the
sample site, and the main job that drives one cycle. Production (``docker/``) replaces all of it."""
