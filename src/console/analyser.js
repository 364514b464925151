// The Analyser's upload with its progress bar; without JavaScript the form
// posts as usual. A file of its own, so that the Content-Security-Policy
// allows scripts from this origin only, never inline ones.
document.documentElement.dataset.js = "on";
var upload = document.getElementById("upload");
if (upload && window.XMLHttpRequest && window.FormData) {
  upload.addEventListener("submit", function (e) {
    e.preventDefault();
    var form = e.target, bar = document.getElementById("progress"), xhr = new XMLHttpRequest();
    bar.hidden = false;
    xhr.upload.onprogress = function (p) { if (p.lengthComputable) bar.value = Math.round(100 * p.loaded / p.total); };
    xhr.onload = function () { document.open(); document.write(xhr.responseText); document.close(); };
    xhr.open("POST", form.action);
    xhr.send(new FormData(form));
  });
}
