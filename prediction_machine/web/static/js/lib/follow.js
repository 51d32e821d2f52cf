// Following one numbered thing on the server, as the teacher's view follows a round or a rating round:
// draw it now, then again every `ms`, until another number is followed. `draw(number)` asks the server
// and redraws; it catches its own errors, so one failed poll leaves the next one to try again.
export function follower(draw, ms) {
  let current = null;
  let timer = null;
  const refresh = () => (current === null ? Promise.resolve() : draw(current));
  return {
    get current() { return current; },
    refresh,
    follow(number) {
      current = number;
      clearInterval(timer);
      timer = setInterval(refresh, ms);
      return refresh();
    },
  };
}
