"""The service's routes by job: ``health`` (alive, ready, the model, metrics), ``analysis`` (images, video
jobs), ``stream`` (the WebSocket), ``client`` (the browser client's page and files)."""
