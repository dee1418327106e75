-- The contract's four tables (shared/CONTRACT.md section 2) and their safety nets.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS public.vendors (
  id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL
);

CREATE TABLE IF NOT EXISTS public.customers (
  id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL
);

CREATE TABLE IF NOT EXISTS public.slots (
  id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  vendor_id uuid NOT NULL REFERENCES public.vendors (id),
  starts_at timestamptz NOT NULL,
  state     text NOT NULL DEFAULT 'free' CONSTRAINT slots_state_check CHECK (state IN ('free', 'booked'))
);

CREATE TABLE IF NOT EXISTS public.bookings (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  intent_id   uuid NOT NULL CONSTRAINT bookings_intent_id_key UNIQUE,
  slot_id     uuid NOT NULL REFERENCES public.slots (id),
  customer_id uuid NOT NULL REFERENCES public.customers (id),
  status      text NOT NULL CONSTRAINT bookings_status_check
                CHECK (status IN ('pending', 'confirmed', 'rejected', 'failed')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS bookings_slot_id_idx ON public.bookings (slot_id);

-- The last line of defence against double-booking: at most one confirmed booking per slot, enforced
-- by the database whatever the application does. Mutants that must reach the database with their
-- bug drop it in one named place (booking_app.safety_nets).
CREATE UNIQUE INDEX IF NOT EXISTS bookings_one_confirmed_per_slot
  ON public.bookings (slot_id) WHERE status = 'confirmed';

CREATE OR REPLACE FUNCTION public.touch_updated_at() RETURNS trigger
  LANGUAGE plpgsql
  AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

DROP TRIGGER IF EXISTS bookings_touch_updated_at ON public.bookings;
CREATE TRIGGER bookings_touch_updated_at
  BEFORE UPDATE ON public.bookings
  FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();
