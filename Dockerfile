# emolens serve in a container. CPU image by default:
#   docker build -t emolens .
#   docker run --rm -p 8000:8000 -e EMOLENS_TOKEN=change-me emolens
# NVIDIA GPUs: a CUDA 12 + cuDNN 9 runtime base with Python 3.10+, and the GPU build of ONNX Runtime:
#   docker build -t emolens:cuda --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 \
#     --build-arg ONNXRUNTIME=onnxruntime-gpu .
#   docker run --rm --gpus all -p 8000:8000 -e EMOLENS_TOKEN=change-me emolens:cuda
# BASE must provide python3 with venv (python:3.x-slim does; on Debian/Ubuntu, python3-venv).
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
ARG ONNXRUNTIME=onnxruntime
# Behind a TLS-inspecting proxy: mount its CA bundle into the build and name it here (scripts/container.sh does).
ARG CA_BUNDLE=
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app app
COPY training training
COPY models models
COPY assets assets
# The project's dependencies and the serve extra, less the ONNX Runtime build the markers would pick and the
# window's Qt: the chosen ONNX Runtime is installed instead of being swapped in after the GPU one.
RUN if [ -n "$CA_BUNDLE" ]; then export PIP_CERT="$CA_BUNDLE"; fi \
 && python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(d for d in p['dependencies'] + p['optional-dependencies']['serve'] \
                if not d.startswith(('onnxruntime', 'PySide6'))))" > /tmp/requirements.txt \
 && python3 -m venv /opt/emolens \
 && /opt/emolens/bin/pip install -q -r /tmp/requirements.txt "$ONNXRUNTIME" \
 && /opt/emolens/bin/pip install -q --no-deps . \
 && find /opt/emolens -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
# OpenCV and MediaPipe load these at import.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libgl1 libglib2.0-0 libegl1 libgles2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --uid 10001 emolens
COPY --from=build /opt/emolens /opt/emolens
ENV PATH=/opt/emolens/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER emolens
WORKDIR /home/emolens
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Listening beyond the container needs a token: pass EMOLENS_TOKEN (the server refuses to start without it).
CMD ["emolens", "serve", "--host", "0.0.0.0", "--port", "8000"]
