# The Rasa server image: the official Rasa image plus everything that runs inside Rasa, the
# rasa_extensions/ package (patches, gateway channel, tracker and lock stores, NLU components)
# with its one requirements file, the same scripts/setup.sh installs (its rasa pin is this
# image's tag: tests/test_rasa_package.py). The trained model is mounted (docker-compose.yml).
FROM rasa/rasa:3.6.21-full
USER root
COPY rasa_extensions/requirements.txt /tmp/rasa-extensions-requirements.txt
RUN pip install --no-cache-dir -r /tmp/rasa-extensions-requirements.txt
COPY rasa_extensions /app/rasa_extensions
ENV PYTHONPATH=/app
USER 1001
