# Sourced by the benchmark scripts: installs the load generators they need when missing.
need_ab_and_wrk() {
  if ! command -v ab >/dev/null || ! command -v wrk >/dev/null; then
    if command -v apt-get >/dev/null; then
      echo "installing ab (apache2-utils) and wrk from the system's packages" >&2
      (apt-get update -qq && apt-get install -y -qq apache2-utils wrk) >/dev/null
    else
      echo "please install ab (apache2-utils) and wrk" >&2
      exit 1
    fi
  fi
}
