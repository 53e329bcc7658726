# The Rasa server image: the official Rasa 3.6.21 image plus the code that runs inside Rasa
# (rasa_extensions/: sentence features, and its pinned extras; stack/: the Rasa-side launcher,
# channel, tracker and lock stores). The trained model is mounted (docker-compose.yml).
FROM rasa/rasa:3.6.21-full
USER root
COPY rasa_extensions/requirements.txt /tmp/rasa-extensions-requirements.txt
RUN pip install --no-cache-dir -r /tmp/rasa-extensions-requirements.txt
COPY rasa_extensions /app/rasa_extensions
COPY stack /app/stack
ENV PYTHONPATH=/app
USER 1001
