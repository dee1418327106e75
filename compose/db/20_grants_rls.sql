-- Who may see what through REST. anon: nothing. authenticated: its own bookings only (RLS on the
-- JWT's `sub`). service_role: everything (BYPASSRLS), which is how SimCity reads the truth.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

REVOKE ALL ON public.vendors, public.customers, public.slots, public.bookings FROM anon;
GRANT SELECT ON public.bookings TO authenticated;
GRANT ALL ON public.vendors, public.customers, public.slots, public.bookings TO service_role;

ALTER TABLE public.vendors   ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.slots     ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bookings  ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS bookings_owner_read ON public.bookings;
CREATE POLICY bookings_owner_read ON public.bookings
  FOR SELECT TO authenticated
  USING (customer_id = auth.uid());
