# Deployment artefacts (deploy/systemd, deploy/docker, deploy/k8s): one test
# that checks them all offline with deploy/validate.sh.  Included from
# tests/CMakeLists.txt.  The built daemons are passed in so that every
# QUARRY_* variable in the units, env files, compose file and manifests is
# checked against their --help and value parser, the systemd units are
# verified with ExecStart on the real binaries, and the Dockerfile's runtime
# packages against the libraries they link.  No PostgreSQL, engine or cluster.
add_test(NAME deploy_validate COMMAND ${PROJECT_SOURCE_DIR}/deploy/validate.sh)
set_tests_properties(deploy_validate PROPERTIES
  LABELS deploy
  TIMEOUT 300
  ENVIRONMENT "QUARRY_BROKER_BIN=$<TARGET_FILE:quarry-broker>;QUARRY_WORKER_BIN=$<TARGET_FILE:quarry-worker>;QUARRY_CLI_BIN=$<TARGET_FILE:quarry-cli>;QUARRY_MIRROR_BIN=$<TARGET_FILE:quarry-mirror>")
