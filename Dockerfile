# syntax=docker/dockerfile:1
#
# One image for every crowdquant process; the command picks which one runs:
#   docker run crowdquant serve submissions|scoring|leaderboard|payouts|gateway
#   docker run crowdquant db upgrade                 (one-shot: migrate every schema)
#   docker run crowdquant pipeline run --round latest (one-shot: the round pipeline)
# Configuration comes only from the environment (see README); nothing secret is baked in.
#
# Two stages: the builder generates the gRPC stubs and installs the project into a virtualenv;
# the runtime stage gets only that virtualenv, runs as uid 10001 and writes nowhere but /tmp and
# /data, so it runs with a read-only root filesystem (docker --read-only, Kubernetes
# readOnlyRootFilesystem).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# The stub generator is a build tool: it lives in this stage's system Python, never in the runtime
# virtualenv. The protobuf ceiling matches the project's runtime dependency, so the generated code
# never needs a newer protobuf than the one installed next to it.
RUN pip install "grpcio-tools>=1.66,<2" "protobuf>=5.27,<7"

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, from pyproject.toml alone: editing the sources does not reinstall numpy & co.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

COPY proto/ proto/
COPY scripts/gen_protos.py scripts/
COPY crowdquant/ crowdquant/
COPY shared/ shared/
COPY services/ services/

# The same generator as `make proto`: stubs and .pyi type stubs land in crowdquant/<service>/v1/,
# importable as crowdquant.<service>.v1 (.dockerignore keeps the build host's stubs out). Then the
# project itself, and a smoke test that the installed CLI imports.
RUN python scripts/gen_protos.py \
    && /opt/venv/bin/pip install --no-deps . \
    && cd / && /opt/venv/bin/crowdquant --help > /dev/null


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="crowdquant" \
      org.opencontainers.image.description="crowdquant tournament back office: one image, every service by command" \
      org.opencontainers.image.licenses="Apache-2.0"

# HOME and bitcoinlib's data folder point at /tmp because bitcoinlib creates its folder and log on
# import; on a read-only root filesystem /tmp (tmpfs / emptyDir) is the only scratch space.
# Anything that must survive a restart belongs in PostgreSQL or under CROWDQUANT_DATA_DIR.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp \
    BCL_DATA_DIR=/tmp/bitcoinlib \
    CROWDQUANT_DATA_DIR=/data \
    CROWDQUANT_GRPC_HOST=0.0.0.0 \
    OPENBLAS_NUM_THREADS=1

# A fixed numeric uid/gid, so Kubernetes can verify runAsNonRoot and volumes can be chowned to it.
RUN groupadd --system --gid 10001 crowdquant \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin crowdquant \
    && install -d -o 10001 -g 10001 -m 0750 /data

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001

# submissions, scoring, leaderboard, payouts (gRPC) and the gateway (HTTP). No HEALTHCHECK here: the
# port depends on the command; compose and Kubernetes probe each service on its own port.
EXPOSE 50051 50052 50053 50054 8080

ENTRYPOINT ["crowdquant"]
CMD ["serve", "submissions"]
