# The gateway image used by docker-compose.yml and deploy/: one image, three roles
# (`mcp-ledger api`, `mcp-ledger worker`, `mcp-ledger migrate`).
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY mcp_ledger ./mcp_ledger
COPY migrations ./migrations
RUN uv sync --frozen --no-dev && useradd --system ledger
ENV PATH="/app/.venv/bin:$PATH" LEDGER_HOST=0.0.0.0
USER ledger
EXPOSE 8000
ENTRYPOINT ["mcp-ledger"]
CMD ["api"]
