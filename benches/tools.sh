# Sourced by the benchmark scripts: `need_tools ab wrk h2load` installs the load generators
# that are missing, from the system's packages.
package_of() {
  case $1 in
    ab) echo apache2-utils ;;
    h2load) echo nghttp2-client ;;
    promtool) echo prometheus ;;
    *) echo "$1" ;;
  esac
}
need_tools() {
  local missing=() tool
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$(package_of "$tool")"); done
  [ ${#missing[@]} -eq 0 ] && return
  if command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} from the system's packages" >&2
    (apt-get update -qq && apt-get install -y -qq "${missing[@]}") >/dev/null
  else
    echo "please install ${missing[*]}" >&2
    exit 1
  fi
}
