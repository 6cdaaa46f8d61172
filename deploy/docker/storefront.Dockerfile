# Storefront image: the HTTP/JSON API and the fitting-room page.
# Build from the repository root: docker build -f deploy/docker/storefront.Dockerfile .
FROM python:3.11-slim-bookworm

# The project's one dependency list includes torch; a CPU build keeps the image small (point
# PIP_EXTRA_INDEX_URL at a CPU wheel index to get one).
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY shared ./shared
COPY services ./services
RUN pip install .

RUN useradd --create-home --uid 10001 tryon
USER tryon
EXPOSE 8080
CMD ["python", "-m", "tryon.services.storefront"]
