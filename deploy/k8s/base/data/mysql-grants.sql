-- Runs once, on an empty data directory, after the image has created MARIADB_USER (`vid2mp3`):
-- that user may use every database whose name starts with `vid2mp3_` (one per service), as on
-- development machines. Used by Kubernetes (ConfigMap mysql-init) and deploy/compose.yaml.
GRANT ALL PRIVILEGES ON `vid2mp3\_%`.* TO 'vid2mp3'@'%';
FLUSH PRIVILEGES;
