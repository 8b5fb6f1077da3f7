"""Workshop mode: hidden-fault exercises with timers and scores, and the control-room page."""
