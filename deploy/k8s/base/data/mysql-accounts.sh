# shellcheck shell=bash
# Sourced once by the MariaDB image's entrypoint, on an empty data directory
# (/docker-entrypoint-initdb.d; Kubernetes: ConfigMap mysql-init, deploy/compose.yaml: a bind mount).
# Least privilege: one account per service, each with rights on its own database only, and one
# for the migrations, the only account allowed DDL:
#   vid2mp3_auth, vid2mp3_gateway, vid2mp3_notifier  SELECT, INSERT, UPDATE, DELETE on vid2mp3_<service>
#   vid2mp3_migrate                                  everything on those three databases (it creates them)
# Passwords come from the environment (the Secret's mysql-<account>-password keys). They also appear
# in connection URLs, so they must be letters and digits, at least 16 of them; anything else stops
# the first start here, before an account exists.
# A database name in GRANT is a pattern in which `_` matches any character, hence `\_`.

for vid2mp3_var in MYSQL_MIGRATE_PASSWORD MYSQL_AUTH_PASSWORD MYSQL_GATEWAY_PASSWORD MYSQL_NOTIFIER_PASSWORD; do
  if [[ ! "${!vid2mp3_var:-}" =~ ^[A-Za-z0-9]{16,}$ ]]; then
    echo "mysql-accounts: $vid2mp3_var must be set to 16 or more letters and digits (openssl rand -hex 20)" >&2
    exit 1
  fi
done

docker_process_sql <<SQL
CREATE USER 'vid2mp3_migrate'@'%' IDENTIFIED BY '${MYSQL_MIGRATE_PASSWORD}';
CREATE USER 'vid2mp3_auth'@'%' IDENTIFIED BY '${MYSQL_AUTH_PASSWORD}';
CREATE USER 'vid2mp3_gateway'@'%' IDENTIFIED BY '${MYSQL_GATEWAY_PASSWORD}';
CREATE USER 'vid2mp3_notifier'@'%' IDENTIFIED BY '${MYSQL_NOTIFIER_PASSWORD}';
GRANT ALL PRIVILEGES ON \`vid2mp3\\_auth\`.* TO 'vid2mp3_migrate'@'%';
GRANT ALL PRIVILEGES ON \`vid2mp3\\_gateway\`.* TO 'vid2mp3_migrate'@'%';
GRANT ALL PRIVILEGES ON \`vid2mp3\\_notifier\`.* TO 'vid2mp3_migrate'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`vid2mp3\\_auth\`.* TO 'vid2mp3_auth'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`vid2mp3\\_gateway\`.* TO 'vid2mp3_gateway'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`vid2mp3\\_notifier\`.* TO 'vid2mp3_notifier'@'%';
SQL
unset vid2mp3_var
