FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PROVISIONER_HOST=0.0.0.0 PROVISIONER_PORT=8000 \
    PROVISIONER_POLICIES_DIR=/app/policies PROVISIONER_TARGETS_DIR=/app/targets
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY provisioner ./provisioner
COPY migrations ./migrations
COPY policies ./policies
COPY targets ./targets
RUN pip install --no-cache-dir -e . && useradd --system --home /app provisioner && chown provisioner /app
USER provisioner
EXPOSE 8000
# Secrets (HR signing secrets, Graph credentials) come from the environment or mounted files.
CMD ["provisioner", "serve"]
