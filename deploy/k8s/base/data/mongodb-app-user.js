// Runs once, on an empty data directory, as the root user the image creates: the converter's own user,
// readWrite on its database only. Used by Kubernetes (ConfigMap mongodb-init) and deploy/compose.yaml.
db.getSiblingDB("vid2mp3").createUser({
  user: "vid2mp3",
  pwd: process.env.VID2MP3_MONGO_PASSWORD,
  roles: [{ role: "readWrite", db: "vid2mp3" }],
});
