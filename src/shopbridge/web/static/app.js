// The dashboard's only script besides htmx: the CSV import's upload progress bar.
document.addEventListener("htmx:xhr:progress", function (event) {
  var bar = document.getElementById("import-progress");
  if (!bar || !event.detail.lengthComputable) { return; }
  bar.hidden = false;
  bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
});
