// Loaded before the page is drawn (a classic, blocking script): the chosen theme, without a flash.
{
  const theme = localStorage.getItem("qasdk.theme");
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
}
