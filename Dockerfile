# The web app and the pipeline, without the training extra (the web app never imports torch).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends wordnet-base wordnet-sense-index \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir ".[dask]"
ENV SYNSET_DATA_DIR=/data
EXPOSE 8000
