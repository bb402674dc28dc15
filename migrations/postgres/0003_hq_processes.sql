-- Several HQ processes on one log (docs/ARCHITECTURE.md "HQ at chain scale"). Every process
-- issues HQ's own ops as the one actor `hq`: a group that issues some first locks the actor's
-- row here (SELECT ... FOR UPDATE, held until its COMMIT), applies the actor's ops it has not
-- seen yet, and only then numbers and checks its own, so no seq is given twice and no right
-- is spent twice whichever process takes an order.
CREATE TABLE hq_actor (
    actor text PRIMARY KEY
);
